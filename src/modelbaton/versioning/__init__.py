"""Code rollouts on Temporal's Worker Versioning: builds, the control plane, drains."""
