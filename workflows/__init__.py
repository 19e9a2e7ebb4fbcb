"""The workloads of the platform, one folder each (each declared by its ``workload.py``), and
the image they run in (``Dockerfile``, ``requirements.txt`` exported from uv.lock)."""
