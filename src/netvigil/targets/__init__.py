"""What to measure: the service catalogue and Citizen Lab test lists."""

from netvigil.targets.catalogue import Catalogue, Endpoint, Service, load_catalogue
from netvigil.targets.testlists import TestListEntry, load_test_list

__all__ = ["Catalogue", "Endpoint", "Service", "TestListEntry", "load_catalogue", "load_test_list"]
