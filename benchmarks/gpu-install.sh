# Source this on the GPU machine (or in its rehearsal), from the repository root: installs the wheels that
# benchmarks/gpu-wheels.sh gathered into gpu-carry/ into a folder of their own, with no registry, and puts
# that folder, the cut-down envpool assets and the repository on PYTHONPATH.
#   . benchmarks/gpu-install.sh
gpu_site=${GPU_SITE:-/tmp/rlsweep-site}
python3 -m pip install --quiet --no-index --no-deps --target "$gpu_site" gpu-carry/wheels/*.whl
export PYTHONPATH="$PWD:$gpu_site:$PWD/gpu-carry/site${PYTHONPATH:+:$PYTHONPATH}"
