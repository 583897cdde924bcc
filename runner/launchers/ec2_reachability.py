"""Can an instance in this subnet reach S3? Checked before RunInstances, on either target.

The training instance gets no public IP (AssociatePublicIpAddress=false), so an internet gateway
route does not help it: it reaches S3 only through an S3 gateway endpoint associated with its
subnet's route table, or through a 0.0.0.0/0 route to a NAT gateway. The subnet's route table is
the one explicitly associated with it, else its VPC's main route table.

Sources: Amazon VPC User Guide, "Gateway endpoints for Amazon S3" (the endpoint adds a route with
the S3 prefix list to the route tables it is associated with) and "NAT gateways" (instances in a
private subnet reach the internet through a route to a NAT gateway); "Subnet route tables" (a
subnet without an explicit association uses the main route table); EC2 User Guide, "Amazon EC2
instance IP addressing" (without a public IPv4 address an instance cannot use an internet gateway).
"""

from __future__ import annotations

from typing import Any

from runner.launchers import LaunchError

SUBNET_KEY = "training.ec2_subnet_id"


def route_table_of(ec2: Any, subnet_id: str, vpc_id: str) -> dict[str, Any]:
    """The route table the subnet uses: its explicit association, else the VPC's main table."""
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]
    if not tables:
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    if not tables:
        raise LaunchError(f"{SUBNET_KEY}: subnet {subnet_id} has no route table (and VPC {vpc_id} no main table)")
    table: dict[str, Any] = tables[0]
    return table


def s3_route_of(ec2: Any, subnet_id: str, region: str) -> str:
    """How an instance without a public IP in ``subnet_id`` reaches S3 (one line), or LaunchError."""
    try:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    except ec2.exceptions.ClientError as exc:
        raise LaunchError(f"{SUBNET_KEY}: subnet {subnet_id} cannot be read: "
                          f"{exc.response.get('Error', {}).get('Message', exc)}") from None
    if not subnets:
        raise LaunchError(f"{SUBNET_KEY}: subnet {subnet_id} does not exist in {region}")
    vpc_id = subnets[0]["VpcId"]
    table = route_table_of(ec2, subnet_id, vpc_id)
    table_id = table["RouteTableId"]

    endpoints = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "service-name", "Values": [f"com.amazonaws.{region}.s3"]},
    ])["VpcEndpoints"]
    for endpoint in endpoints:
        if (endpoint.get("VpcEndpointType", "Gateway") == "Gateway" and table_id in endpoint.get("RouteTableIds", [])
                and str(endpoint.get("State", "available")).lower() == "available"):
            return f"S3 gateway endpoint {endpoint['VpcEndpointId']} on route table {table_id}"

    for route in table.get("Routes", []):
        nat = route.get("NatGatewayId")
        if route.get("DestinationCidrBlock") != "0.0.0.0/0" or not nat or route.get("State", "active") != "active":
            continue
        gateways = ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"]
        if gateways and gateways[0].get("State") == "available":
            return f"NAT gateway {nat} (0.0.0.0/0 on route table {table_id})"

    raise LaunchError(
        f"{SUBNET_KEY}: subnet {subnet_id} (VPC {vpc_id}, route table {table_id}) cannot reach S3 from an "
        "instance without a public IP: associate an S3 gateway endpoint "
        f"(com.amazonaws.{region}.s3) with route table {table_id}, or route 0.0.0.0/0 to a NAT gateway, "
        f"or set {SUBNET_KEY} to a subnet that has one")
