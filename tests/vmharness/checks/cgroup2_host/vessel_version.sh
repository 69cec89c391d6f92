#!/bin/sh
# The vessel binary runs inside L1: its shared libraries and loader were resolved.
out=$(vessel --version 2>&1) || { echo "vessel --version failed: $out"; exit 1; }
echo "$out"
case $out in *vessel*) ;; *) echo "unexpected output"; exit 1 ;; esac
