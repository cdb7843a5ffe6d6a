#!/bin/sh
# Stands in for a CUDA test when the build had no CUDA toolkit (no nvcc):
# the test binary could not be built, so it is reported as skipped.
echo "SKIP: built without the CUDA toolkit (no nvcc; set CUDA_HOME): CUDA test not built"
exit 77
