type Level = "debug" | "info" | "warn" | "error";

const order: Level[] = ["debug", "info", "warn", "error"];
const threshold = order.indexOf((process.env.LOG_LEVEL as Level) ?? "info");

function log(level: Level, message: string, fields: Record<string, unknown> = {}) {
  if (order.indexOf(level) >= threshold) {
    console.log(JSON.stringify({ ts: new Date().toISOString(), level, message, ...fields }));
  }
}

export const logger = {
  debug: (message: string, fields?: Record<string, unknown>) => log("debug", message, fields),
  info: (message: string, fields?: Record<string, unknown>) => log("info", message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => log("warn", message, fields),
  error: (message: string, fields?: Record<string, unknown>) => log("error", message, fields),
};
