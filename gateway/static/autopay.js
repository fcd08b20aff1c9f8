// "Pay automatically" on the hosted checkout page once the session is complete
// (gateway/mandate_enrolment.py).
//
// The wallet (EIP-1193, window.ethereum) connects, is checked to be on the proposal's chain, and
// signs with eth_signTypedData_v4 first an EIP-2612 Permit letting the mandate contract move the
// proposal's allowance of its USDC, then the contract's Mandate of the proposal's cap, period and
// expiry for the merchant's payout wallet. Nonces (the token's and the contract's) and the
// deadline's clock (the latest block's time) come from the chain through the wallet. The public
// relay checks both against the proposal and relays them from the platform's collector; the page
// follows the mandate until the chain holds it (ACTIVE).
// The page's JSON config (<script type="application/json" id="autopay-config">): proposal (the
// GET of `follow`'s proposal), relay (the URL to post to) and follow (the URL to poll).
"use strict";
(() => {
  const config = JSON.parse(document.getElementById("autopay-config").textContent);
  const proposal = config.proposal;
  const button = document.getElementById("pay-automatically");
  const message = document.getElementById("autopay-message");
  const status = document.getElementById("autopay-status");
  const FOLLOW_EVERY_MS = 1000;
  const SIGNING_WINDOW_S = 1800; // The signatures' deadline: half an hour of chain time.
  const REFUSED = 4001; // EIP-1193: the user rejected the request.
  const NONCES = "0x7ecebe00"; // nonces(address), on the token and on the mandate contract.
  const DOMAIN = [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ];
  const PERMIT = [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ];
  const MANDATE = [
    { name: "payer", type: "address" },
    { name: "merchant", type: "address" },
    { name: "cap", type: "uint256" },
    { name: "period", type: "uint256" },
    { name: "expiry", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ];

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  // Says why a wallet step failed; the step's own words for a refusal.
  class Stopped extends Error {}

  function stop(error, refusal, failure) {
    if (error instanceof Stopped) return error;
    const why = error && error.message ? error.message : String(error);
    return new Stopped(error && error.code === REFUSED ? refusal : `${failure}: ${why}`);
  }

  async function ask(wallet, method, params, refusal, failure) {
    try {
      return await wallet.request({ method, params });
    } catch (error) {
      throw stop(error, refusal, failure);
    }
  }

  async function nonceOf(wallet, contract, account) {
    const data = NONCES + account.slice(2).toLowerCase().padStart(64, "0");
    const answer = await ask(
      wallet,
      "eth_call",
      [{ to: contract, data }, "latest"],
      "Your wallet refused to read the chain.",
      "Your wallet could not read the chain",
    );
    return BigInt(answer).toString();
  }

  function typedData(primaryType, types, domain, fields) {
    return JSON.stringify({
      types: { EIP712Domain: DOMAIN, [primaryType]: types },
      primaryType,
      domain: { ...domain, chainId: Number(proposal.chainId) },
      message: fields,
    });
  }

  // The permit and the mandate signed, as the relay takes them.
  async function signed(wallet) {
    const [account] = await ask(
      wallet,
      "eth_requestAccounts",
      [],
      "You declined to connect your wallet: nothing was signed and nothing was sent.",
      "Your wallet could not connect",
    );
    const chainId = await ask(
      wallet,
      "eth_chainId",
      [],
      "Your wallet refused to say its chain.",
      "Your wallet could not say its chain",
    );
    if (BigInt(chainId) !== BigInt(proposal.chainId)) {
      throw new Stopped(`Switch your wallet to chain ${proposal.chainId}, then try again.`);
    }
    const block = await ask(
      wallet,
      "eth_getBlockByNumber",
      ["latest", false],
      "Your wallet refused to read the chain.",
      "Your wallet could not read the chain",
    );
    const deadline = String(Number(BigInt(block.timestamp)) + SIGNING_WINDOW_S);
    const permit = {
      owner: account,
      spender: proposal.contractAddress,
      value: proposal.allowanceBaseUnits,
      nonce: await nonceOf(wallet, proposal.tokenAddress, account),
      deadline,
    };
    say("Sign the permit in your wallet (1 of 2)…", false);
    const permitSignature = await ask(
      wallet,
      "eth_signTypedData_v4",
      [
        account,
        typedData(
          "Permit",
          PERMIT,
          {
            name: proposal.tokenName,
            version: proposal.tokenVersion,
            verifyingContract: proposal.tokenAddress,
          },
          permit,
        ),
      ],
      "You declined the permit: nothing was signed and nothing was sent.",
      "Your wallet could not sign the permit",
    );
    const mandate = {
      payer: account,
      merchant: proposal.merchantWalletAddress,
      cap: proposal.capBaseUnits,
      period: proposal.periodSeconds,
      expiry: proposal.expiry,
      nonce: await nonceOf(wallet, proposal.contractAddress, account),
      deadline,
    };
    say("Sign the mandate in your wallet (2 of 2)…", false);
    const signature = await ask(
      wallet,
      "eth_signTypedData_v4",
      [
        account,
        typedData(
          "Mandate",
          MANDATE,
          { name: "Mandates", version: "1", verifyingContract: proposal.contractAddress },
          mandate,
        ),
      ],
      "You declined the mandate: nothing was sent, and the permit you signed is not used.",
      "Your wallet could not sign the mandate",
    );
    return {
      payer: account,
      cap: mandate.cap,
      period: mandate.period,
      expiry: mandate.expiry,
      deadline,
      signature,
      permit: { value: permit.value, deadline, signature: permitSignature },
    };
  }

  // Whether the relay took the mandate; when not, the page says why.
  async function relayed(enrolment) {
    const answer = await fetch(config.relay, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(enrolment),
    }).catch(() => null);
    if (answer && answer.ok) return true;
    const body = answer ? await answer.json().catch(() => null) : null;
    say(
      body && body.error ? body.error.message : "The mandate could not be sent: the network failed. Try again.",
      true,
    );
    return false;
  }

  const pause = () => new Promise((done) => setTimeout(done, FOLLOW_EVERY_MS));

  // Until the chain holds the mandate (ACTIVE) or shows it ended; an answer that does not come
  // is asked again.
  async function follow() {
    for (;;) {
      const answer = await fetch(config.follow, { cache: "no-store" }).catch(() => null);
      const found = answer && answer.ok ? await answer.json().catch(() => null) : null;
      const mandate = found ? found.mandate : null;
      if (mandate) {
        status.textContent = mandate.status;
        if (mandate.status === "ACTIVE") {
          say("Auto-pay is on.", false);
          return;
        }
        if (mandate.status !== "PENDING") {
          say(`The mandate is ${mandate.status}: set up auto-pay again.`, true);
          button.hidden = false;
          button.disabled = false;
          return;
        }
      }
      await pause();
    }
  }

  async function enrol() {
    const wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      say("No wallet found in this browser: install a browser wallet to pay automatically.", true);
      return;
    }
    button.disabled = true;
    let enrolment;
    try {
      enrolment = await signed(wallet);
    } catch (error) {
      say(error instanceof Stopped ? error.message : `Something failed: ${error}`, true);
      button.disabled = false;
      return;
    }
    say("Sending the mandate…", false);
    if (!(await relayed(enrolment))) {
      button.disabled = false;
      return;
    }
    button.hidden = true;
    status.textContent = "PENDING";
    say("Setting up auto-pay on chain…", false);
    await follow();
  }

  button.addEventListener("click", enrol);
  if (status.textContent === "PENDING") follow();
})();
