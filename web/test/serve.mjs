// Serves web/ on 127.0.0.1 for the page tests: python's http.server on a port the OS picks
// (port 0, so two runs never collide), resolved once the server has said where it listens and
// answers a request; no fixed sleep that a slow machine could lose to.
import { spawn } from 'node:child_process';

export async function serve(dir) {
  const server = spawn('python3', ['-u', '-m', 'http.server', '--bind', '127.0.0.1', '0', '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (d) => {
      text += d;
      const m = text.match(/port (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`http.server exited (${code}) before listening: ${text}`)));
  });
  // the line is printed just before serve_forever(); a request confirms it answers
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { port, close: () => server.kill() };
}
