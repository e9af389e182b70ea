-- Retention per domain (issue 21.3): how long a domain's mail may wait in the queue before mrod
-- expires it (postsuper -e, a bounce to the sender), in seconds. NULL: Postfix's own
-- maximal_queue_lifetime. lookupd does not answer from it: no journal trigger.
ALTER TABLE domain ADD COLUMN queue_lifetime INTEGER CHECK (queue_lifetime IS NULL OR queue_lifetime > 0);
