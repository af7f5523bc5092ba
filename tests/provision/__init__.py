"""The provisioning test's machine: a cached debootstrap root booted with real systemd."""
