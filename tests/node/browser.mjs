// Headless Chromium and a loopback file server for the corpus runs in a
// browser (corpus.test.mjs with CORPUS_ENGINE=chromium, tests/bundlers/).

/** Debian's chromium, headless, through the given playwright-core `chromium`. */
export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/**
 * Serves on a loopback port whatever `lookup(pathname)` finds: `[type,
 * body]`, or null for 404. Resolves once listening.
 */
export async function serveFiles(lookup) {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    const found = lookup(decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!found) return res.writeHead(404).end();
    res.writeHead(200, { "Content-Type": found[0] }).end(found[1]);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}
