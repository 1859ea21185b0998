from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from modelbaton.pipeline import search_attributes


async def test_dev_server_has_pipeline_search_attributes(client: Client) -> None:
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    for key in search_attributes.ALL:
        assert key.name in resp.custom_attributes
