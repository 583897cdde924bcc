"""Before RunInstances: the subnet reaches S3 through a gateway endpoint or a NAT gateway, or the run stops."""

from __future__ import annotations

import pytest

from runner.launchers import LaunchError
from runner.launchers.ec2_reachability import s3_route_of


@pytest.fixture
def vpc(local_target):
    ec2 = local_target.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    return ec2, vpc_id


def _subnet(ec2, vpc_id: str, n: int) -> str:
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.30.{n}.0/24")["Subnet"]["SubnetId"]


def _own_table(ec2, vpc_id: str, subnet: str) -> str:
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return table


def test_reachable_through_an_s3_gateway_endpoint(vpc):
    ec2, vpc_id = vpc
    subnet = _subnet(ec2, vpc_id, 1)
    table = _own_table(ec2, vpc_id, subnet)
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName="com.amazonaws.us-east-1.s3",
                                       VpcEndpointType="Gateway", RouteTableIds=[table])["VpcEndpoint"]
    assert s3_route_of(ec2, subnet, "us-east-1") == (
        f"S3 gateway endpoint {endpoint['VpcEndpointId']} on route table {table}")


def test_reachable_through_a_nat_gateway(vpc):
    ec2, vpc_id = vpc
    private, public = _subnet(ec2, vpc_id, 2), _subnet(ec2, vpc_id, 3)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    table = _own_table(ec2, vpc_id, private)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert s3_route_of(ec2, private, "us-east-1") == f"NAT gateway {nat} (0.0.0.0/0 on route table {table})"


def test_a_subnet_without_its_own_table_uses_the_vpcs_main_table(vpc):
    ec2, vpc_id = vpc
    subnet = _subnet(ec2, vpc_id, 4)
    (main,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                 {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway",
                            RouteTableIds=[main["RouteTableId"]])
    assert s3_route_of(ec2, subnet, "us-east-1").endswith(f"on route table {main['RouteTableId']}")


def test_an_endpoint_on_another_table_or_for_another_service_does_not_count(vpc):
    ec2, vpc_id = vpc
    subnet, other = _subnet(ec2, vpc_id, 5), _subnet(ec2, vpc_id, 6)
    table = _own_table(ec2, vpc_id, subnet)
    other_table = _own_table(ec2, vpc_id, other)
    ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway",
                            RouteTableIds=[other_table])
    ec2.create_vpc_endpoint(VpcId=vpc_id, ServiceName="com.amazonaws.us-east-1.dynamodb", VpcEndpointType="Gateway",
                            RouteTableIds=[table])
    with pytest.raises(LaunchError, match=f"route table {table}\\) cannot reach S3"):
        s3_route_of(ec2, subnet, "us-east-1")


def test_a_default_subnet_routes_to_an_internet_gateway_only_and_is_refused(local_target):
    ec2 = local_target.client("ec2")
    default = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    with pytest.raises(LaunchError) as refused:
        s3_route_of(ec2, default["SubnetId"], "us-east-1")
    message = str(refused.value)
    assert message.startswith(f"training.ec2_subnet_id: subnet {default['SubnetId']}")
    assert "S3 gateway endpoint (com.amazonaws.us-east-1.s3)" in message and "NAT gateway" in message


def test_an_unknown_subnet_is_named(local_target):
    with pytest.raises(LaunchError, match="training.ec2_subnet_id: subnet subnet-0123456789abcdef0 cannot be read"):
        s3_route_of(local_target.client("ec2"), "subnet-0123456789abcdef0", "us-east-1")
