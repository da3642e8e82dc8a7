"""The container image and the Kubernetes manifests (deploy/)."""
