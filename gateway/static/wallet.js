// "Pay with your wallet" on the hosted invoice and checkout pages (gateway/pages.py).
//
// The wallet (EIP-1193, window.ethereum) signs an EIP-3009 TransferWithAuthorization of the
// page's payment request with eth_signTypedData_v4: to the payee, exactly the amount, valid
// until the request expires, its nonce the request's reference hash. The public relay checks it
// and submits it, paying the gas. The invoice page then follows the payment until the invoice is
// PAID and shows the receipt; the checkout page reloads and waits as after its manual form.
// The page's JSON config (<script type="application/json" id="wallet-config">): request (the
// payment request), relay (the URL to post to), follow (the status URL, or null to reload) and
// following (a payment is already on its way: follow it now).
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("wallet-config").textContent);
  const button = document.getElementById("pay-with-wallet");
  const message = document.getElementById("wallet-message");
  const FOLLOW_EVERY_MS = 1000;
  const REFUSED = 4001; // EIP-1193: the user rejected the request.
  const TYPES = {
    EIP712Domain: [
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
    ],
    TransferWithAuthorization: [
      { name: "from", type: "address" },
      { name: "to", type: "address" },
      { name: "value", type: "uint256" },
      { name: "validAfter", type: "uint256" },
      { name: "validBefore", type: "uint256" },
      { name: "nonce", type: "bytes32" },
    ],
  };

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  function show(id, text) {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  }

  function authorizationFrom(account) {
    const request = config.request;
    return {
      from: account,
      to: request.payeeWalletAddress,
      value: request.amountBaseUnits,
      validAfter: "0",
      validBefore: String(Math.floor(Date.parse(request.expireTime) / 1000)),
      nonce: request.referenceHash,
    };
  }

  function typedData(authorization) {
    const request = config.request;
    return {
      types: TYPES,
      primaryType: "TransferWithAuthorization",
      domain: {
        name: request.tokenName,
        version: request.tokenVersion,
        chainId: Number(request.chainId),
        verifyingContract: request.tokenAddress,
      },
      message: authorization,
    };
  }

  function showReceipt(settlement) {
    show("receipt-amount", `${settlement.amountPaid} USDC`);
    show("receipt-transaction", settlement.transactionHash);
    show("receipt-block", settlement.blockNumber);
    document.getElementById("receipt").hidden = false;
    document.getElementById("pay").hidden = true;
    say("", false);
  }

  const pause = () => new Promise((done) => setTimeout(done, FOLLOW_EVERY_MS));

  // Until the invoice is PAID or its payment FAILED; an answer that does not come is asked again.
  async function follow() {
    for (;;) {
      const answer = await fetch(config.follow, { cache: "no-store" }).catch(() => null);
      if (answer && answer.ok) {
        const found = await answer.json();
        show("status", found.status);
        const settlement = found.settlement;
        if (found.status === "PAID" && settlement) {
          showReceipt(settlement);
          return;
        }
        if (settlement && settlement.status === "FAILED") {
          say("The payment failed on chain. You can try again.", true);
          button.disabled = false;
          return;
        }
        if (settlement) {
          say(`Payment sent; confirming on chain (${settlement.confirmations} confirmations)…`, false);
        }
      }
      await pause();
    }
  }

  // The signed authorization, or null once the page said why there is none.
  async function signed(wallet) {
    try {
      const [account] = await wallet.request({ method: "eth_requestAccounts" });
      const authorization = authorizationFrom(account);
      say("Sign the payment in your wallet…", false);
      const signature = await wallet.request({
        method: "eth_signTypedData_v4",
        params: [account, JSON.stringify(typedData(authorization))],
      });
      return { authorization, signature };
    } catch (error) {
      if (error && error.code === REFUSED) {
        say("You declined in your wallet: nothing was signed and nothing was sent.", true);
      } else {
        say(`Your wallet could not sign the payment: ${error && error.message ? error.message : error}`, true);
      }
      return null;
    }
  }

  // Whether the relay took the payment; when not, the page says why.
  async function relayed(payment) {
    const answer = await fetch(config.relay, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payment),
    }).catch(() => null);
    if (answer && answer.ok) return true;
    const body = answer ? await answer.json().catch(() => null) : null;
    say(
      body && body.error ? body.error.message : "The payment could not be sent: the network failed. Try again.",
      true,
    );
    return false;
  }

  async function pay() {
    const wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      say("No wallet found in this browser: install a browser wallet, or pay by transfer with the QR code.", true);
      return;
    }
    button.disabled = true;
    const payment = await signed(wallet);
    if (payment === null) {
      button.disabled = false;
      return;
    }
    say("Sending the payment…", false);
    if (!(await relayed(payment))) {
      button.disabled = false;
      return;
    }
    if (!config.follow) {
      window.location.reload();
      return;
    }
    say("Payment sent; confirming on chain…", false);
    await follow();
  }

  button.addEventListener("click", pay);
  if (config.following) {
    button.disabled = true;
    say("A payment is confirming on chain…", false);
    follow();
  }
})();
