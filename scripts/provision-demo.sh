#!/bin/bash
# Provisioning user data for the demo storefront's build instance (used by the local pipeline).
# EC2 runs it once, at first boot, through cloud-init. It installs a pretend app, leaves a marker,
# and powers the machine off: the bake step sees the instance reach `stopped` and creates the AMI.
# On local-aws the same flow is emulated: an instance whose user data ends with `poweroff` stops
# itself after LOCAL_AWS_PROVISION_SECONDS (the "fail-provisioning" marker described in
# scripts/emulator/README.md makes it hang instead, for timeout tests; it must not appear here).
set -euo pipefail

APP_DIR=/opt/shop
mkdir -p "$APP_DIR"
cat > "$APP_DIR/app.sh" <<'APP'
#!/bin/sh
# pretend storefront: answers /health on port 80
exec python3 -m http.server 80 --directory /opt/shop/www
APP
chmod +x "$APP_DIR/app.sh"
mkdir -p "$APP_DIR/www"
echo ok > "$APP_DIR/www/health"
cat > /etc/systemd/system/shop.service <<'UNIT'
[Unit]
Description=pretend storefront
After=network-online.target
[Service]
ExecStart=/opt/shop/app.sh
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable shop.service
date -u +%Y-%m-%dT%H:%M:%SZ > /var/lib/bakeroll-provisioned
sync
poweroff
