"""Fault tests on a three-broker local cluster (a package, so that its conftest does not
shadow ``tests/conftest.py`` as the top-level module ``conftest``)."""
