#!/bin/sh
# `docker` and `aws` for a local build (sagepipe.local.codebuild.stubs). Each build has copies of this file named
# docker and aws in <stubs>/bin, first on its PATH; a copy finds its build's files from the path it was run as, so
# nothing about the stubs is in the build's environment. It hands the call to the build's stub server (client.py).
set -eu
stubs_bin=${0%/*}
stubs=${stubs_bin%/*}
{
  IFS= read -r python
  IFS= read -r client
  IFS= read -r server
  IFS= read -r log
} <"$stubs/launch"
# -I: neither the build's PYTHON* variables, nor its user site, nor its working directory change what runs.
exec "$python" -I "$client" "$server" "$log" "${0##*/}" "$@"
