import { ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import QRCode from 'qrcode';
import { AuthService } from '../../../src/gen/identity/v1/auth_pb.js';
import type { Session } from '../../../src/gen/identity/v1/user_pb.js';
import './style.css';

/**
 * A browser app for Latch. The access token lives in this module's memory only; the refresh token
 * never reaches page scripts: Latch keeps it in an HttpOnly cookie (BROWSER_REFRESH_COOKIE=true),
 * which the browser sends to Refresh and Logout only. Nothing is written to localStorage or
 * sessionStorage.
 */

const LATCH_URL: string = import.meta.env.VITE_LATCH_URL ?? 'http://localhost:8080';

// Every call opts into the cookie mode; the header also makes every cross-origin call preflighted.
const optIn: Interceptor = (next) => (req) => {
  req.header.set('latch-refresh-cookie', '1');
  return next(req);
};

const auth = createClient(
  AuthService,
  createConnectTransport({
    baseUrl: LATCH_URL,
    // The cookie is sent and stored only with credentials: 'include' (and Latch's Allow-Credentials).
    fetch: (input, init) => fetch(input, { ...init, credentials: 'include' }),
    interceptors: [optIn],
  }),
);

let accessToken = '';
let currentSessionId = '';
let challengeToken = '';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const bearer = () => ({ headers: { authorization: `Bearer ${accessToken}` } });

function show(view: 'signed-out' | 'mfa' | 'signed-in'): void {
  for (const id of ['signed-out', 'mfa', 'signed-in']) $(id).hidden = id !== view;
}

function status(text: string): void {
  $('status').textContent = text;
}

function fail(err: unknown): void {
  const box = $('error');
  box.textContent = err instanceof ConnectError ? `${err.rawMessage} (${codeName(err)})` : String(err);
  box.hidden = false;
}

function codeName(err: ConnectError): string {
  return err.metadata.get('latch-error-id') ?? `code ${err.code}`;
}

function clearError(): void {
  $('error').hidden = true;
  $('error').textContent = '';
}

const fmt = (t: Timestamp | undefined) => (t ? timestampDate(t).toLocaleString() : '');

/** Runs a UI action: clears the last error, shows the next one. */
function action(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    clearError();
    try {
      await fn();
    } catch (err) {
      fail(err);
    }
  };
}

function onSubmit(id: string, fn: (form: HTMLFormElement) => Promise<void>): void {
  const form = $<HTMLFormElement>(id);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void action(() => fn(form))();
  });
}

const field = (form: HTMLFormElement, name: string) => (form.elements.namedItem(name) as HTMLInputElement).value;

/** The sid claim of the access token: which of the listed sessions is this one. */
function sessionIdOf(jwt: string): string {
  try {
    const payload = jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    return (JSON.parse(atob(payload)) as { sid?: string }).sid ?? '';
  } catch {
    return '';
  }
}

async function signedIn(session: Session | undefined): Promise<void> {
  if (!session) throw new Error('no session in the response');
  accessToken = session.accessToken;
  currentSessionId = sessionIdOf(accessToken);
  $('who').textContent = session.user?.email ?? '';
  $('expiry').textContent = fmt(session.accessTokenExpiresAt);
  $('totp-state').textContent = session.user?.totpEnabled ? 'On.' : 'Off.';
  $('totp-begin-form').hidden = session.user?.totpEnabled ?? false;
  show('signed-in');
  await loadSessions();
}

function signedOut(): void {
  accessToken = '';
  currentSessionId = '';
  challengeToken = '';
  for (const id of ['totp-confirm-form', 'backup-codes']) $(id).hidden = true;
  $('sessions').replaceChildren();
  show('signed-out');
}

async function loadSessions(): Promise<void> {
  const res = await auth.listSessions({}, bearer());
  const rows = res.sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.sessionId = s.sessionId;
    for (const text of [fmt(s.createdAt), fmt(s.lastUsedAt), s.userAgent.slice(0, 40)]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement('td');
    if (s.sessionId === currentSessionId) {
      td.textContent = 'this session';
    } else {
      const btn = document.createElement('button');
      btn.className = 'secondary revoke';
      btn.textContent = 'Revoke';
      btn.addEventListener(
        'click',
        action(async () => {
          await auth.revokeSession({ sessionId: s.sessionId }, bearer());
          status('Session revoked.');
          await loadSessions();
        }),
      );
      td.append(btn);
    }
    tr.append(td);
    return tr;
  });
  $('sessions').replaceChildren(...rows);
}

onSubmit('register-form', async (form) => {
  await auth.register({ email: field(form, 'email'), password: field(form, 'password') });
  status('Account created. Sign in below.');
  form.reset();
});

onSubmit('login-form', async (form) => {
  const res = await auth.login({ email: field(form, 'email'), password: field(form, 'password') });
  form.reset();
  if (res.result.case === 'mfaChallenge') {
    challengeToken = res.result.value.challengeToken;
    status('Enter the code from your authenticator app.');
    show('mfa');
    return;
  }
  status('Signed in.');
  await signedIn(res.result.value);
});

onSubmit('mfa-form', async (form) => {
  const res = await auth.completeMfa({ challengeToken, code: { case: 'totpCode', value: field(form, 'code') } });
  form.reset();
  challengeToken = '';
  status('Signed in with two factors.');
  await signedIn(res.session);
});

onSubmit('totp-begin-form', async (form) => {
  const res = await auth.beginTotpEnrollment({ currentPassword: field(form, 'password') }, bearer());
  form.reset();
  $<HTMLImageElement>('totp-qr').src = await QRCode.toDataURL(res.otpauthUri, { width: 200, margin: 1 });
  $('totp-secret').textContent = res.secret;
  $('totp-secret').dataset.otpauthUri = res.otpauthUri;
  $('totp-confirm-form').hidden = false;
});

onSubmit('totp-confirm-form', async (form) => {
  const res = await auth.confirmTotpEnrollment({ code: field(form, 'code') }, bearer());
  form.reset();
  form.hidden = true;
  $('totp-begin-form').hidden = true;
  $('totp-state').textContent = 'On.';
  const list = $('backup-codes').querySelector('ul')!;
  list.replaceChildren(...res.backupCodes.map((c) => Object.assign(document.createElement('li'), { textContent: c })));
  $('backup-codes').hidden = false;
  status('Two-factor authentication is on.');
});

$('refresh').addEventListener(
  'click',
  action(async () => {
    // No token in the body: the browser sends the HttpOnly cookie, Latch rotates it.
    const res = await auth.refresh({});
    status('Tokens refreshed.');
    await signedIn(res.session);
  }),
);

$('logout').addEventListener(
  'click',
  action(async () => {
    await auth.logout({});
    signedOut();
    status('Signed out.');
  }),
);

$('sessions-reload').addEventListener('click', action(loadSessions));

// A reload keeps the user signed in while the cookie lives; with no cookie this quietly stays signed out.
signedOut();
auth
  .refresh({})
  .then((res) => signedIn(res.session))
  .catch(() => undefined)
  .finally(() => document.body.setAttribute('data-ready', 'true'));
