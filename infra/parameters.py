"""SSM parameter names through which the stacks find each other.

ZeroCostStack writes them and ProdStack reads them at deploy time, so neither stack
holds a CloudFormation export that would pin the other in place.
"""

PREFIX = "/prostudio"

VPC_ID = f"{PREFIX}/network/vpc-id"
APP_SUBNET_IDS = f"{PREFIX}/network/app-subnet-ids"
DATA_SUBNET_IDS = f"{PREFIX}/network/data-subnet-ids"
APP_ROUTE_TABLE_IDS = f"{PREFIX}/network/app-route-table-ids"
PUBLIC_SUBNET_IDS = f"{PREFIX}/network/public-subnet-ids"

# The Redis the zero-cost topology serves from: the source of the data copy.
OLD_REDIS_HOST = f"{PREFIX}/zero-cost/redis-host"
OLD_REDIS_PORT = f"{PREFIX}/zero-cost/redis-port"
OLD_REDIS_TLS = f"{PREFIX}/zero-cost/redis-tls"
OLD_REDIS_SECRET_ARN = f"{PREFIX}/zero-cost/redis-secret-arn"
# Security group that the old Redis admits; operator hosts running the copy CLI wear it.
REDIS_MIGRATION_CLIENT_SG = f"{PREFIX}/zero-cost/redis-migration-client-sg"

# The production Redis primary endpoint: injected into the tasks as an ECS secret.
PROD_REDIS_HOST = f"{PREFIX}/prod/redis-host"

# Set identifiers of the public name's two weighted records ("old" in ZeroCostStack's Dns
# construct, "new" in ProdStack's); the shift CLI defaults to them.
OLD_SET_ID = "old"
NEW_SET_ID = "new"
# The zero-cost boxes, for the deploy-time Redis cutover that ProdStack runs on them; their
# security group is admitted by production's VPC endpoints (the boxes call AWS APIs).
BOX_INSTANCE_IDS = f"{PREFIX}/zero-cost/box-instance-ids"
BOX_ROLE_ARN = f"{PREFIX}/zero-cost/box-role-arn"
BOX_SECURITY_GROUP = f"{PREFIX}/zero-cost/box-sg"
