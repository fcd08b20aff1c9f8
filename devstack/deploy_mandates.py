"""python -m devstack.deploy_mandates RPC_URL TOKEN COLLECTOR: deploys contracts/mandates.vy
for the token with that collector, from the node's first account (its owner, who may rotate the
collector), and prints its address. COLLECTOR is an address, or a file holding the collector's
private key (the secret settlement reads, so the two cannot disagree); on a fresh anvil right
after devstack.deploy_usdc the contract is at 0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512."""

import asyncio
import re
import sys
from pathlib import Path

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3

from devstack.mandates import Mandates

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def collector_address(collector: str) -> str:
    """COLLECTOR as an address: itself, or the address of the key in the file it names."""
    if ADDRESS.fullmatch(collector):
        return collector
    return str(Account.from_key(Path(collector).read_text().strip()).address)


async def deploy(rpc_url: str, token: str, collector: str) -> str:
    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    deployer = (await w3.eth.accounts)[0]
    await w3.provider.disconnect()
    mandates = await Mandates.deploy(rpc_url, deployer, token, collector)
    await mandates.close()
    return mandates.address


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m devstack.deploy_mandates RPC_URL TOKEN COLLECTOR|KEY_FILE")
    print(asyncio.run(deploy(sys.argv[1], sys.argv[2], collector_address(sys.argv[3]))))
