"""The censorship lab: emulated ISPs, services and censors in Linux network namespaces,
driven by scenario files on a compressed clock (docs/lab.md)."""
