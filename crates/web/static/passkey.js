// Passkeys (通行密钥) on tongban's pages: the log-in button ([data-passkey-login]) and the
// "add a passkey" form ([data-passkey-register]). The server answers WebAuthn options with
// binary fields as base64url; this script turns them into buffers for the browser and the
// authenticator's answer back into JSON. Every request carries the page's CSRF token.
(() => {
  'use strict';

  const toBytes = (s) => {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  };
  const toText = (buf) => {
    let bin = '';
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };

  async function post(url, csrf, body) {
    const resp = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.message || resp.statusText);
    return data;
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    for (const c of o.excludeCredentials || []) c.id = toBytes(c.id);
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    for (const c of o.allowCredentials || []) c.id = toBytes(c.id);
    return o;
  }

  function registration(cred) {
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults(),
      response: {
        attestationObject: toText(cred.response.attestationObject),
        clientDataJSON: toText(cred.response.clientDataJSON),
        transports: cred.response.getTransports ? cred.response.getTransports() : undefined,
      },
    };
  }

  function assertion(cred) {
    return {
      id: cred.id,
      rawId: toText(cred.rawId),
      type: cred.type,
      extensions: cred.getClientExtensionResults(),
      response: {
        authenticatorData: toText(cred.response.authenticatorData),
        clientDataJSON: toText(cred.response.clientDataJSON),
        signature: toText(cred.response.signature),
        userHandle: cred.response.userHandle ? toText(cred.response.userHandle) : null,
      },
    };
  }

  // Shows why passkeys cannot work here (no WebAuthn, or the page is not on the bound origin);
  // answers whether they can.
  function usable(box, say) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(box.querySelector('[data-passkey-message]').dataset.unsupported);
      return false;
    }
    if (box.dataset.origin && box.dataset.origin !== location.origin) {
      const msg = box.querySelector('[data-passkey-message]');
      msg.textContent = `${msg.dataset.wrongOrigin} `;
      const a = document.createElement('a');
      a.href = box.dataset.origin + location.pathname + location.search;
      a.textContent = box.dataset.origin;
      msg.appendChild(a);
      return false;
    }
    return true;
  }

  function speaker(box) {
    const msg = box.querySelector('[data-passkey-message]');
    return (text) => { msg.textContent = text; };
  }

  function failure(box, say, err) {
    say(`${box.querySelector('[data-passkey-message]').dataset.failed} ${err.message || err}`);
  }

  for (const box of document.querySelectorAll('[data-passkey-login]')) {
    const say = speaker(box);
    const button = box.querySelector('button');
    if (!usable(box, say)) { button.disabled = true; continue; }
    button.addEventListener('click', async () => {
      const base = box.dataset.passkeyLogin;
      button.disabled = true;
      say(box.querySelector('[data-passkey-message]').dataset.working);
      try {
        const start = await post(`${base}/begin`, box.dataset.csrf);
        const cred = await navigator.credentials.get({ publicKey: requestOptions(start.publicKey) });
        const done = await post(`${base}/finish`, box.dataset.csrf, { handle: start.handle, credential: assertion(cred) });
        location.assign(done.next);
      } catch (err) {
        failure(box, say, err);
        button.disabled = false;
      }
    });
  }

  for (const form of document.querySelectorAll('[data-passkey-register]')) {
    const say = speaker(form);
    const button = form.querySelector('button');
    if (!usable(form, say)) { button.disabled = true; continue; }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const base = form.dataset.passkeyRegister;
      button.disabled = true;
      say(form.querySelector('[data-passkey-message]').dataset.working);
      try {
        const start = await post(`${base}/begin`, form.dataset.csrf);
        const cred = await navigator.credentials.create({ publicKey: creationOptions(start.publicKey) });
        await post(`${base}/finish`, form.dataset.csrf, { handle: start.handle, name: form.elements.name.value, credential: registration(cred) });
        const back = new URL(location.href);
        back.searchParams.set('done', 'passkey_added');
        location.assign(back.pathname + back.search);
      } catch (err) {
        failure(form, say, err);
        button.disabled = false;
      }
    });
  }
})();
