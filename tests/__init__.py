"""The test suite; its folders mirror the packages, with shared fixtures in conftest.py."""
