"""python -m devstack.deploy_usdc RPC_URL: deploys MockUSDC from the node's first account and
prints its address (on a fresh anvil: 0x5FbDB2315678afecb367f032d93F642f64180aa3)."""

import asyncio
import sys

from web3 import AsyncHTTPProvider, AsyncWeb3

from devstack.chain import MockUsdc


async def deploy(rpc_url: str) -> str:
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    deployer = (await w3.eth.accounts)[0]
    await w3.provider.disconnect()
    usdc = await MockUsdc.deploy(rpc_url, deployer)
    await usdc.close()
    return usdc.address


if __name__ == "__main__":
    print(asyncio.run(deploy(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8545")))
