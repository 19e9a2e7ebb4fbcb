"""`mlwf rehearse`: the whole AWS path on an emulated AWS on this machine.

moto runs in this process (`cloud.EmulatedAWS`), with IAM enforced; what the stacks would create
is seeded from their offline plan (`seed`), each role becoming an IAM user that holds its
policies; ECS tasks run as local processes on their own loopback addresses (`tasks.TaskRunner`);
a real Prefect server and prefect-aws ECS worker run the pipeline deployment (`rehearse`), and
the run is checked afterwards (`checks`). Where moto lacks behaviour the harness adds it in one
place (`moto_gaps`). Needs the dev dependencies (moto); nothing here is in the image.
"""
