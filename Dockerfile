# The image deploy/helm/values.yaml names (README "Scale-out", Kubernetes): this project with its
# scale-out and Kubernetes extras (dagster-postgres, dagster-celery, dagster-k8s, pinned in
# pyproject.toml), serving its definitions over gRPC. Dagster's chart runs it as the code server,
# and the run and step pods it launches run the same image.
#   docker build -t registry.example.com/alvh-pipeline:0.1.0 .
# The instance (dagster.yaml) comes from the ConfigMap `python deploy/instance_configmap.py` renders;
# the copy below is the same PostgreSQL instance for running the image outside Kubernetes.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    GX_ANALYTICS_ENABLED=False \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/alvh
# the package and its shipped replay data (alvh_pipeline/sources/data); nothing else is needed to run
COPY pyproject.toml README.md ./
COPY alvh_pipeline ./alvh_pipeline
RUN pip install ".[k8s]"
COPY deploy/dagster.postgres.yaml /opt/dagster/dagster_home/dagster.yaml

EXPOSE 3030
# what values.yaml's dagsterApiGrpcArgs and port say: the module holding `dg.Definitions`
CMD ["dagster", "api", "grpc", "--module-name", "alvh_pipeline.definitions", "--host", "0.0.0.0", "--port", "3030"]
