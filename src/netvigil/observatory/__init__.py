"""The running observatory: the web app, the analysis process, the judge worker, serve.

It wires the collector (intake and log), the analysis and the report (read side) into one
service; nothing below it imports it back.
"""
