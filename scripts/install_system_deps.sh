#!/usr/bin/env bash
# System packages the tests need: a real sshd (SSH runner tests), Chromium and a CJK font (browser tests).
set -euo pipefail
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
# A CJK font, so the Chinese UI renders (not as empty boxes) in browser screenshots.
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk" || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${need[*]}. Install them as root (apt-get install ${need[*]}); the tests that need them will fail." >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o DPkg::Lock::Timeout=300
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}"
