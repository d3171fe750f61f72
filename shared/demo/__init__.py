"""`make demo`: a sandbox MSP billed for a month end to end, through the platform's public interfaces only.

``scenario`` reads the MSP and its catalog (``northwind.yaml``), ``records`` is the month its tools send,
``runner`` drives the platform and returns a ``DemoSummary``, ``summary`` prints it, ``mailsink`` is the
local SMTP server notification sends to.
"""
