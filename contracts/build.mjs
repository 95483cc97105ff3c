// Compiles the registry with the pinned solcjs (npm `solc`, see package.json)
// and writes the committed artefacts. Debian ships no solc and native
// compiler downloads fail here, so the JavaScript build is the only compiler.
//
//   node contracts/build.mjs            write contracts/artifacts/*
//   node contracts/build.mjs --stdout   print the artefact JSON, write nothing
//                                        (the reproducibility test compares it
//                                        with the committed file)
import { readFileSync, writeFileSync, readdirSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const solc = require(join(here, "node_modules", "solc"));

const EXPECTED_VERSION = "0.8.30";
const MAIN = "SessionRegistry";

// Settings are part of the artefact: changing any of them changes the bytecode.
// evmVersion cancun: opBNB runs it (Haber/Ecotone); nothing here needs Prague.
const settings = {
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  evmVersion: "cancun",
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] },
  },
};

const srcDir = join(here, "src");
const sources = {};
for (const name of readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[`src/${name}`] = { content: readFileSync(join(srcDir, name), "utf8") };
}

const version = solc.version();
if (!version.startsWith(EXPECTED_VERSION + "+")) {
  console.error(`solc ${version} found, ${EXPECTED_VERSION} pinned: run npm ci --prefix contracts`);
  process.exit(1);
}

const input = { language: "Solidity", sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (output.errors ?? []).filter((e) => e.severity !== "info");
for (const e of problems) console.error(e.formattedMessage);
if (problems.some((e) => e.severity === "error") || problems.length > 0) {
  // Warnings fail the build too: a committed artefact is compiled clean.
  process.exit(1);
}

const c = output.contracts[`src/${MAIN}.sol`][MAIN];
const artefact = {
  contractName: MAIN,
  sourceName: `src/${MAIN}.sol`,
  compiler: { name: "solc (solcjs, npm)", version },
  settings: { optimizer: settings.optimizer, viaIR: settings.viaIR, evmVersion: settings.evmVersion, metadata: settings.metadata },
  abi: c.abi,
  bytecode: "0x" + c.evm.bytecode.object,
  deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  metadata: c.metadata,
};
const text = JSON.stringify(artefact, null, 2) + "\n";

if (process.argv.includes("--stdout")) {
  process.stdout.write(text);
} else {
  const out = join(here, "artifacts");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${MAIN}.json`), text);
  // The standard-JSON input, for block-explorer source verification.
  writeFileSync(join(out, `${MAIN}.input.json`), JSON.stringify(input, null, 2) + "\n");
  console.error(`wrote artifacts/${MAIN}.json (solc ${version}, ${c.evm.deployedBytecode.object.length / 2} bytes deployed)`);
}
