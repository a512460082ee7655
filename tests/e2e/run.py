#!/usr/bin/env python3
"""Runs irp's end-to-end tests against $IRP (default ./irp). Arguments
filter tests by name. Prints 'N passed, N failed'."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_abuse  # noqa: E402
import test_cli  # noqa: E402
import test_drill  # noqa: E402
import test_engine  # noqa: E402
import test_http  # noqa: E402
import test_loader  # noqa: E402
import test_notify  # noqa: E402
import test_plugins  # noqa: E402
import test_plugins_live  # noqa: E402
import test_record  # noqa: E402
import test_report  # noqa: E402

sys.exit(harness.main([test_cli, test_loader, test_engine, test_abuse, test_http, test_notify, test_record, test_drill,
                       test_plugins, test_plugins_live, test_report]))
