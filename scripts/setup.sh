#!/usr/bin/env bash
# Installs what llamalite needs to build (Debian/Ubuntu), as root or through sudo.
set -euo pipefail
pkgs="cmake gcc make libutf8proc-dev python3 python3-numpy tmux gcc-aarch64-linux-gnu qemu-user"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
