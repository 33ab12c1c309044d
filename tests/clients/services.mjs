// @jupyterlab/services in Node (what VS Code and other Node clients use), pointed at the bridge:
// node services.mjs <bridge url> <token>  -> prints {"stdout": ..., "status": ...} as JSON.
import { KernelManager, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';

const [baseUrl, token] = process.argv.slice(2);
const serverSettings = ServerConnection.makeSettings({
  baseUrl, wsUrl: baseUrl.replace(/^http/, 'ws'), token, appendToken: true, WebSocket,
});
const kernels = new KernelManager({ serverSettings });
const kernel = await kernels.startNew({ name: 'python3' });
let stdout = '';
const future = kernel.requestExecute({ code: "import os; print('services', os.environ['JUPYTERHUB_USER'])" });
future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') stdout += msg.content.text; };
const reply = await future.done;
await kernel.shutdown();
kernels.dispose();
console.log(JSON.stringify({ stdout, status: reply.content.status }));
