#!/bin/sh
# Writes the documentation generated from vessel's command line definitions:
#   OUT/man8/vessel.8.gz, OUT/man8/vessel-VERB.8.gz, OUT/vessel.bash, OUT/_vessel (zsh).
# Run by the build after linking vessel (packaging/install.cmake). Usage: gen-docs.sh VESSEL OUT
set -eu
vessel=$1 out=$2
rm -rf "$out.tmp"
mkdir -p "$out.tmp/man8"
"$vessel" __doc man "$out.tmp/man8"
gzip -9n "$out.tmp"/man8/*.8
"$vessel" __doc bash >"$out.tmp/vessel.bash"
"$vessel" __doc zsh >"$out.tmp/_vessel"
rm -rf "$out"
mv "$out.tmp" "$out"
