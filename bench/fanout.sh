#!/bin/sh
# Issue 4's fan-out benchmark (see bench/fanout.py); run by `make bench`.
exec python3 "$(dirname "$0")/fanout.py" "${IRP:-./irp}"
