// End-to-end checks in headless Chromium through the netron-paddle-pir launcher.
// Usage: node e2e.mjs SPEC.json  ->  prints one JSON object with the facts per case.
// SPEC: {"chromium": "/usr/bin/chromium", "viewport"?: {width, height},
//        "cases": [{"name", "url", "conv"?, "region"?, "module"?, "screenshot"?}]}
import * as fs from 'node:fs';
import { chromium } from 'playwright-core';

export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export const launch = (executablePath) => chromium.launch({ executablePath, args: FLAGS });

// Netron's browser.js replaces window.eval with a thrower; Playwright's evaluate needs the
// native one. A setter that ignores the assignment keeps it (test harness only).
export const keepEval = () => {
    const native = window.eval;
    Object.defineProperty(window, 'eval', { get: () => native, set: () => {}, configurable: true });
};

// Opens a URL and waits until Netron has either drawn a graph or shown an error.
export const openModel = async (page, url, timeout = 120000) => {
    const start = Date.now();
    await page.goto(url);
    await page.waitForFunction(() => {
        const message = document.getElementById('message-text');
        const shown = message && message.textContent.length > 0 && !document.body.classList.contains('spinner');
        return shown || (document.body.classList.contains('default') && document.querySelector('#canvas g.graph-node'));
    }, null, { timeout, polling: 50 });
    return Date.now() - start;
};

const facts = async (page) => page.evaluate(() => ({
    // Blocks drawn inside an if/while node are graph-nodes too: count the outermost only.
    nodes: Array.from(document.querySelectorAll('#canvas g.graph-node')).filter((n) => !n.parentElement.closest('.graph-node')).length,
    inputs: Array.from(document.querySelectorAll('#canvas .graph-item-input')).map((n) => n.textContent),
    outputs: Array.from(document.querySelectorAll('#canvas .graph-item-output')).map((n) => n.textContent),
    message: (document.getElementById('message-text') || {}).textContent || '',
    body: document.body.className
}));

const sidebarRows = async (page) => page.evaluate(() => Array.from(document.querySelectorAll('#sidebar-content .sidebar-item')).map((item) => {
    const name = item.querySelector('.sidebar-item-name input');
    const line = item.querySelector('.sidebar-item-value-line');
    return [name ? name.getAttribute('value') : '', line ? line.textContent : ''];
}));

const main = async () => {
    const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf-8'));
    const browser = await launch(spec.chromium || '/usr/bin/chromium');
    const results = [];
    try {
        for (const item of spec.cases) {
            const page = await browser.newPage({ viewport: spec.viewport || { width: 1400, height: 900 } });
            const result = { name: item.name, external: [], errors: [] };
            page.on('request', (request) => {
                if (!request.url().startsWith(item.url)) {
                    result.external.push(request.url());
                }
            });
            page.on('pageerror', (error) => result.errors.push(error.message));
            await page.addInitScript(keepEval);
            result.ms = await openModel(page, item.url);
            Object.assign(result, await facts(page));
            if (item.conv) {
                const conv = page.locator('#canvas g.graph-node', { hasText: 'conv2d' }).first();
                await conv.locator('.node-item-type').first().click();
                await page.waitForSelector('#sidebar-content .sidebar-item');
                result.sidebar = await sidebarRows(page);
                const filter = page.locator('#sidebar-content .sidebar-item', { has: page.locator('input[value="filter"]') });
                await filter.locator('.sidebar-item-value-expander').first().click();
                await page.waitForTimeout(300);
                result.filter = (await filter.innerText()).substring(0, 2000);
                if (item.screenshot) {
                    await page.screenshot({ path: item.screenshot });
                }
            }
            if (item.region) {
                const node = page.locator('#canvas g.graph-node', { hasText: item.region.node }).first();
                const before = result.nodes;
                await node.getByText('\u25CB').first().click(); // "○" opens the block as a graph
                await page.waitForFunction((count) => document.querySelectorAll('#canvas g.graph-node').length !== count, before, { timeout: 20000 });
                await page.waitForTimeout(300);
                result.region = await facts(page);
                result.region.types = await page.evaluate(() => Array.from(document.querySelectorAll('#canvas g.graph-node .node-item-type')).map((n) => (n.querySelector('text') || n).textContent));
                if (item.region.screenshot) {
                    await page.screenshot({ path: item.region.screenshot });
                }
            }
            if (item.module) {
                // Step into the first module node with its definition button ("\u0192"), as a user would.
                const node = page.locator('#canvas g.graph-node', { has: page.getByText('\u0192', { exact: true }) }).first();
                await node.getByText('\u0192', { exact: true }).first().click();
                await page.waitForFunction(() => document.querySelectorAll('#toolbar-path .toolbar-path-name-button').length > 0 && document.querySelector('#canvas g.graph-node'), null, { timeout: 60000 });
                await page.waitForTimeout(300);
                result.module = await facts(page);
                result.module.path = await page.evaluate(() => Array.from(document.querySelectorAll('#toolbar-path .toolbar-path-name-button')).map((b) => b.textContent));
                if (item.module.screenshot) {
                    await page.screenshot({ path: item.module.screenshot });
                }
                // And back to the main graph.
                await page.click('#toolbar-path-back-button');
                await page.waitForFunction(() => document.querySelectorAll('#toolbar-path .toolbar-path-name-button').length === 0, null, { timeout: 60000 });
                result.back = await facts(page);
            }
            if (item.screenshot && !item.conv) {
                await page.screenshot({ path: item.screenshot });
            }
            await page.close();
            results.push(result);
        }
    } finally {
        await browser.close();
    }
    process.stdout.write(JSON.stringify(results));
};

if (process.argv[1] && process.argv[1].endsWith('e2e.mjs')) {
    await main();
}
