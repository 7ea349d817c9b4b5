// One JSON object per line on stdout: easy to read locally, easy to ship to a log store.

type Level = "debug" | "info" | "warn" | "error";

const levels: Level[] = ["debug", "info", "warn", "error"];
const configured = levels.indexOf((process.env.LOG_LEVEL ?? "info") as Level);
const threshold = configured === -1 ? 1 : configured;

function log(level: Level, message: string, fields: { [key: string]: unknown } = {}): void {
  if (levels.indexOf(level) < threshold) {
    return;
  }
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
  if (level === "error" || level === "warn") {
    console.error(line);
  } else {
    console.log(line);
  }
}

export const logger = {
  debug: (message: string, fields?: { [key: string]: unknown }) => log("debug", message, fields),
  info: (message: string, fields?: { [key: string]: unknown }) => log("info", message, fields),
  warn: (message: string, fields?: { [key: string]: unknown }) => log("warn", message, fields),
  error: (message: string, fields?: { [key: string]: unknown }) => log("error", message, fields),
};
