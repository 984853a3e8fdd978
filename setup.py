"""Packages for the wheel: find_packages cannot see the folders pyproject maps by package-dir
(launch/ -> dist_caffe.launch, kernels/ -> dist_caffe._kernels), so they are named here."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["dist_caffe*"]) + ["dist_caffe._kernels", "dist_caffe.launch"])
