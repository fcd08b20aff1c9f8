"""python -m devstack.deploy_mandates RPC_URL TOKEN COLLECTOR: deploys contracts/mandates.vy
for the token with that collector, from the node's first account (its owner, who may rotate the
collector), and prints its address."""

import asyncio
import sys

from web3 import AsyncHTTPProvider, AsyncWeb3

from devstack.mandates import Mandates


async def deploy(rpc_url: str, token: str, collector: str) -> str:
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    deployer = (await w3.eth.accounts)[0]
    await w3.provider.disconnect()
    mandates = await Mandates.deploy(rpc_url, deployer, token, collector)
    await mandates.close()
    return mandates.address


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m devstack.deploy_mandates RPC_URL TOKEN COLLECTOR")
    print(asyncio.run(deploy(sys.argv[1], sys.argv[2], sys.argv[3])))
