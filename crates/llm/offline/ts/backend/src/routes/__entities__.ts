import { Router } from "express";
import { requireUser } from "../auth";
import { __entity__Service } from "../services/__entity__Service";

export const __entity__Router = Router();

__entity__Router.use(requireUser);

__entity__Router.get("/", async (_req, res) => {
  res.json(await __entity__Service.list(res.locals.userId));
});

__entity__Router.post("/", async (req, res) => {
  const title = String(req.body?.title ?? "").trim();
  if (title.length === 0) {
    res.status(422).json({ error: "title is required" });
    return;
  }
  const created = await __entity__Service.create(res.locals.userId, {
    title,
    details: String(req.body?.details ?? ""),
  });
  res.status(201).json(created);
});

__entity__Router.patch("/:id", async (req, res) => {
  const updated = await __entity__Service.update(res.locals.userId, Number(req.params.id), req.body ?? {});
  if (updated === null) {
    res.status(404).json({ error: "not found" });
    return;
  }
  res.json(updated);
});

__entity__Router.delete("/:id", async (req, res) => {
  const removed = await __entity__Service.remove(res.locals.userId, Number(req.params.id));
  res.status(removed ? 204 : 404).end();
});
