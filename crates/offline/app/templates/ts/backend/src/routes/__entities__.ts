// The [[ entities ]] API: every route needs a signed-in user and sees only that user's [[ entities ]].
// Routes carry their full paths, so metrics and logs name them the same way wherever they are answered.

import { Router } from "express";
import { requireUser } from "../auth.js";
import { parseId } from "../http.js";
import { [[ Entity ]]Service } from "../services/[[ entity ]]Service.js";
import type { Store } from "../store.js";

export function [[ entities ]]Router(store: Store): Router {
  const service = new [[ Entity ]]Service(store);
  const router = Router();

  router
    .route("/api/[[ entities ]]")
    .all(requireUser(store))
    .get(async (_req, res) => {
      res.json(await service.list(res.locals.user.id));
    })
    .post(async (req, res) => {
      res.status(201).json(await service.create(res.locals.user.id, req.body));
    });

  router
    .route("/api/[[ entities ]]/:id")
    .all(requireUser(store))
    .get(async (req, res) => {
      res.json(await service.get(res.locals.user.id, parseId(req.params.id)));
    })
    .patch(async (req, res) => {
      res.json(await service.update(res.locals.user.id, parseId(req.params.id), req.body));
    })
    .delete(async (req, res) => {
      await service.remove(res.locals.user.id, parseId(req.params.id));
      res.status(204).end();
    });

  return router;
}
