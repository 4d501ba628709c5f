"""faultproxy: a fault-injecting HTTP proxy between an AWS SDK and the local AWS (scripts/faultproxy).

Modules: wire (which AWS operation a request is, and each protocol's error answers), rules (the rules
format and which call gets which fault), server (the proxy process), cli (the `scripts/faultproxy`
command). See README.md beside this file.
"""
