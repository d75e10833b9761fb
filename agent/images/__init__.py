"""The host's image store: images pulled from a registry, unpacked once, shared by containers.

skopeo copies images from an OCI distribution registry into one OCI layout
per host; umoci unpacks each image (whiteouts and all) into a rootfs
directory named by the image id, which containers use read-only as the lower
layer of their own overlayfs root (agent/oci/rootfs.py). See docs/containers.md.
"""
