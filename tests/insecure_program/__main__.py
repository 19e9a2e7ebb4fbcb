"""Deliberately insecure: each resource breaks guardrails on purpose. Never deploy it."""

import json

import pulumi_aws as aws
import pulumi_github as github_repository

# S3: public ACL, everyone-allowed policy, partial public access block, no encryption, no TLS
# rule, no versioning.
bucket = aws.s3.Bucket("open-bucket", acl="public-read")
aws.s3.BucketPolicy(
    "open-policy",
    bucket=bucket.id,
    policy=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
    ),
)
aws.s3.BucketPublicAccessBlock("half-block", bucket=bucket.id, block_public_acls=True, block_public_policy=False)

# Network: a VPC without flow logs, public IPs on launch, the world on every port, Dask ports
# to a public range, two NAT gateways.
vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
subnet = aws.ec2.Subnet("public", vpc_id=vpc.id, cidr_block="10.0.1.0/24", map_public_ip_on_launch=True)
wide_open = aws.ec2.SecurityGroup(
    "wide-open",
    vpc_id=vpc.id,
    ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=0, to_port=65535, cidr_blocks=["0.0.0.0/0"])],
    egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])],
)
aws.vpc.SecurityGroupIngressRule(
    "dask-public",
    security_group_id=wide_open.id,
    ip_protocol="tcp",
    from_port=8786,
    to_port=8787,
    cidr_ipv4="8.8.8.0/24",
)
for index in range(2):
    eip = aws.ec2.Eip(f"nat-{index}", domain="vpc")
    aws.ec2.NatGateway(f"nat-{index}", subnet_id=subnet.id, allocation_id=eip.id)

# ECS: floating image tags, no awslogs, privileged, a password in the environment, oversized,
# and a service with public IPs.
aws.ecs.TaskDefinition(
    "bad-task",
    family="bad",
    cpu="8192",
    memory="32768",
    requires_compatibilities=["FARGATE"],
    network_mode="awsvpc",
    container_definitions=json.dumps(
        [
            {
                "name": "app",
                "image": "nginx:latest",
                "memory": 512,
                "privileged": True,
                "environment": [{"name": "DB_PASSWORD", "value": "not-a-real-password"}],
            },
            {"name": "sidecar", "image": "busybox", "memory": 128},
        ]
    ),
)
aws.ecs.TaskDefinition(
    "host-network",
    family="host",
    network_mode="host",
    container_definitions=json.dumps([{"name": "app", "image": "nginx@sha256:0", "memory": 128}]),
)
aws.ecs.Cluster("blind")  # no Container Insights
aws.sqs.Queue("plain-queue", sqs_managed_sse_enabled=False)
aws.sns.Topic("plain-topic")
aws.ecs.Service(
    "public-service",
    cluster="insecure-cluster",
    task_definition="bad",
    network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(subnets=[subnet.id], assign_public_ip=True),
)

# IAM: a role anyone may assume, with every action on every resource.
role = aws.iam.Role(
    "anyone",
    assume_role_policy=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    ),
)
aws.iam.RolePolicy(
    "admin", role=role.id, policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
)
# A task role any account's ECS may assume for it (no source condition), which may stop any task
# (Resource "*" where IAM scopes StopTask to tasks) and delete any object of any bucket.
deputy = aws.iam.Role(
    "confused-deputy",
    assume_role_policy=json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
    ),
)
aws.iam.RolePolicy(
    "stop-and-delete-anything",
    role=deputy.id,
    policy=json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["ecs:StopTask"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:aws:sqs:us-east-1:1:q"},
            ]
        }
    ),
)

# Logs, KMS, ECR: no retention (and one kept too briefly for prod), unencrypted, no rotation
# and no key policy, mutable unscanned images; the ECS task above writes on its root filesystem.
aws.cloudwatch.LogGroup("forever")
aws.cloudwatch.LogGroup("brief", retention_in_days=30)
aws.kms.Key("static", enable_key_rotation=False)
aws.kms.Key(
    "everyones",
    enable_key_rotation=True,
    policy=json.dumps({"Statement": [{"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt"}]}),
)
aws.ecr.Repository(
    "mutable",
    image_tag_mutability="MUTABLE",
    image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=False),
)

# AWS Guard ports: unencrypted EBS and RDS, a public database, an HTTP listener without a
# redirect on a load balancer without deletion protection or access logs.
aws.ebs.Volume("plain", availability_zone="us-east-1a", size=10)
aws.rds.Instance(
    "db",
    engine="postgres",
    instance_class="db.t3.micro",
    allocated_storage=20,
    publicly_accessible=True,
    storage_encrypted=False,
    username="app",
    manage_master_user_password=True,
)
balancer = aws.lb.LoadBalancer("lb", security_groups=[wide_open.id], subnets=[subnet.id])
aws.lb.Listener(
    "http",
    load_balancer_arn=balancer.arn,
    port=80,
    protocol="HTTP",
    default_actions=[
        aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn="arn:aws:elasticloadbalancing:tg")
    ],
)

# Secrets Manager: a secret that never rotates and has no exemption.
aws.secretsmanager.Secret("never-rotated", name="app/db-password")

# GitHub OIDC: a role any branch of any repository of the owner can assume, from pull requests
# too, holding administrator rights.
github = aws.iam.Role(
    "github-deploy",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {
                        "Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"
                    },
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}},
                }
            ],
        }
    ),
)
aws.iam.RolePolicyAttachment(
    "github-deploy-admin", role=github.name, policy_arn="arn:aws:iam::aws:policy/AdministratorAccess"
)
# The same role may create roles with no permissions boundary (so it can mint an administrator).
aws.iam.RolePolicy(
    "github-deploy-iam",
    role=github.id,
    policy=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy"], "Resource": "*"}]}
    ),
)

# GitHub: prod deployable from any branch, approved by nobody.
github_repository.RepositoryEnvironment("prod", repository="platform", environment="prod")
