#!/usr/bin/env bash
# Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (the original idx files in
# /usr/share/datasets/fashion-mnist/). Installs it where this user can (root, or sudo without a
# password); otherwise prints the one command that does, and `make datasets` skips the dataset.
set -euo pipefail
dir="${MLBENCH_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
[ -f "$dir/train-images-idx3-ubyte.gz" ] && exit 0
if command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q dataset-fashion-mnist >/dev/null && exit 0
    elif sudo -n true 2>/dev/null; then
        sudo apt-get install -y -q dataset-fashion-mnist >/dev/null && exit 0
    fi
fi
echo "note: Fashion-MNIST is not installed; install it with: sudo apt-get install dataset-fashion-mnist" \
     "(or put its idx files in a folder named by MLBENCH_FASHION_MNIST_DIR). The CNN smoke needs it." >&2
