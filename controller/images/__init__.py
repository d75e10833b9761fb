"""The cluster's images, kept in its registry: what `run` resolves and `vxmesh image ...` works on.

The registry is the cluster's image store (proto/cluster_registry.py says
where each reference lives there). skopeo copies images in and out
(skopeo.py: archives, other registries); reading manifests and
configurations, listing and deleting speak the registry's HTTP API
directly (registry_api.py), since no tool does that. cluster_images.py
holds the operations, service.py the gRPC service of the CLI.
"""
