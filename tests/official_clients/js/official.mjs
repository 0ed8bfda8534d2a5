// Drives the official tastytrade JS SDK (@tastytrade/api) against the simulator, unchanged:
// OAuth refresh-token login, customer, accounts, balances, positions, today's orders, then the
// Account Streamer (connect + the SDK's own heartbeats) while the market script runs and one
// Order is injected through the simulator's control API. Exits non-zero on any failure.
//
//   TT_SIM_URL (default http://127.0.0.1:8081), TT_SIM_STREAMER_URL (default <TT_SIM_URL as ws>/streamer),
//   TT_SECRET, TT_REFRESH (default the simulator's demo credentials), TT_LISTEN_SECS (default 8).
import TastytradeClient from '@tastytrade/api'

const base = process.env.TT_SIM_URL ?? 'http://127.0.0.1:8081'
const streamerUrl = process.env.TT_SIM_STREAMER_URL ?? `${base.replace(/^http/, 'ws')}/streamer`
const listenSecs = Number(process.env.TT_LISTEN_SECS ?? 8)
const INJECT_ACCOUNT = '5WT31842'
const INJECT_ID = 990001

const fail = (what, error) => {
  const detail = error?.response ? `${error.response.status} ${JSON.stringify(error.response.data)}` : (error?.stack ?? error)
  console.error(`FAIL ${what}: ${detail}`)
  process.exit(1)
}

const client = new TastytradeClient({
  baseUrl: base,
  accountStreamerUrl: streamerUrl,
  clientSecret: process.env.TT_SECRET ?? 'demo-client-secret',
  refreshToken: process.env.TT_REFRESH ?? 'demo-refresh-token',
  oauthScopes: ['read', 'trade'],
})

let accounts
let customerId
try {
  const customer = await client.accountsAndCustomersService.getCustomerResource()
  customerId = customer['external-id']
  console.log(`customer: ${customer['first-name']} ${customer['last-name']} (${customerId})`)
  accounts = await client.accountsAndCustomersService.getCustomerAccounts()
  for (const { account } of accounts) {
    const number = account['account-number']
    console.log(`account ${number} ${account.nickname} closed=${account['is-closed']}`)
    const balance = await client.balancesAndPositionsService.getAccountBalanceValues(number)
    const positions = await client.balancesAndPositionsService.getPositionsList(number)
    const orders = await client.orderService.getLiveOrders(number)
    console.log(`  net-liq ${balance['net-liquidating-value']} cash ${balance['cash-balance']}; ` +
      `${positions.length} positions (${positions.map(p => `${p.symbol.trim()} ${p.quantity} ${p['quantity-direction']}`).join(', ')}); ` +
      `${orders.length} orders today (${orders.map(o => `${o.id} ${o.status}`).join(', ')})`)
  }
} catch (error) {
  fail('REST', error)
}

const streamer = client.accountStreamer
const seen = {}
let injected = null
streamer.addMessageObserver((message) => {
  if (message.type === undefined) {
    if (message.status !== 'ok' || message.action !== 'heartbeat' || !seen.heartbeatAck) {
      console.log(`ack: ${JSON.stringify(message)}`)
    }
    if (message.action === 'heartbeat' && message.status === 'ok') seen.heartbeatAck = (seen.heartbeatAck ?? 0) + 1
    return
  }
  seen[message.type] = (seen[message.type] ?? 0) + 1
  const data = message.data ?? {}
  if (message.type === 'Order' && data.id === INJECT_ID) injected = data
  // The market script stamps its orders `source: tastytrade-sim`; print every other Order
  // (injected through the control API, e.g. with curl) in full.
  if (message.type === 'Order' && data.source !== 'tastytrade-sim') {
    console.log(`injected ${JSON.stringify(message)}`)
  } else if (seen[message.type] <= 2) {
    const what = data.status ?? data.symbol ?? data['net-liquidating-value'] ?? ''
    console.log(`event ${message.type} ${data['account-number'] ?? ''} ${data.id ?? ''} ${what}`.replace(/ +/g, ' '))
  }
})
streamer.addStreamerStateObserver((state) => {
  if (state !== 0) console.log(`streamer state: ${['Open', 'Closed', 'Error'][state]}`)
})

try {
  await streamer.start()
  // As the SDK's README does: every account number, closed ones included.
  const numbers = accounts.map(({ account }) => account['account-number'])
  console.log(`connect ${numbers.join(',')} -> ${await streamer.subscribeToAccounts(numbers)}`)
  // Resolves with the request id once sent; its ack arrives through the message observer.
  console.log(`user-message-subscribe ${customerId} -> request ${await streamer.subscribeToUser(customerId)}`)
} catch (error) {
  fail('streamer connect', error)
}

await new Promise((resolve) => setTimeout(resolve, 2000))
const order = {
  id: INJECT_ID, 'account-number': INJECT_ACCOUNT, 'time-in-force': 'Day', 'order-type': 'Limit', size: 3,
  'underlying-symbol': 'AAPL', 'underlying-instrument-type': 'Equity', price: '199.5', 'price-effect': 'Debit',
  status: 'Live', cancellable: true, editable: true, edited: false, 'received-at': new Date().toISOString(),
  'updated-at': Date.now(), 'user-id': '99', username: 'demotrader',
  legs: [{ 'instrument-type': 'Equity', symbol: 'AAPL', action: 'Buy to Open', quantity: 3, 'remaining-quantity': 3, fills: [] }],
}
const injectResponse = await fetch(`${base}/sim/accounts/${INJECT_ACCOUNT}/events`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'Order', data: order }),
})
console.log(`injected Order ${INJECT_ID}: HTTP ${injectResponse.status}`)

await new Promise((resolve) => setTimeout(resolve, listenSecs * 1000))
streamer.stop()
console.log(`received: ${JSON.stringify(seen)}`)
if (!injected) fail('streamer', `the injected Order ${INJECT_ID} never arrived`)
if (!seen.heartbeatAck) fail('streamer', 'no heartbeat was acknowledged')
if (Object.keys(seen).filter((k) => k !== 'heartbeatAck').length < 2) fail('streamer', 'too few notification types')
console.log(`OK @tastytrade/api: injected Order ${injected.id} ${injected.status} arrived`)
process.exit(0)
