"""Load balancer ARNs as AWS writes them. moto 5.2.5 names every load balancer
`loadbalancer/app/<name>/<id>`, whatever its type; AWS writes `app/` for an Application, `net/` for a
Network and `gwy/` for a Gateway Load Balancer (Elastic Load Balancing API reference, "LoadBalancer";
User Guide for Network Load Balancers, "CloudWatch metrics": the `LoadBalancer` dimension
`net/my-load-balancer/50dc6c495c0c9188`). Clients tell the type from the ARN (bakeroll's metric gate
reads only Application Load Balancers' metrics), so CreateLoadBalancer renames the ARN of a network or
gateway load balancer before anything else sees it; its listeners and rules, whose ARNs moto derives from
the load balancer's, follow (`listener/net/…`).
"""

from __future__ import annotations

from moto.elbv2.models import ELBv2Backend

PREFIX = {"network": "net", "gateway": "gwy"}


def _create_load_balancer(original):
    def create_load_balancer(self: ELBv2Backend, *args, **kwargs):
        lb = original(self, *args, **kwargs)
        kind = PREFIX.get(lb.type)
        if kind is None:
            return lb
        old = lb.arn
        new = old.replace(":loadbalancer/app/", f":loadbalancer/{kind}/", 1)
        tags = self.tagging_service.list_tags_for_resource(old).get("Tags", [])
        self.tagging_service.delete_all_tags_for_resource(old)
        self.load_balancers.pop(old, None)
        lb.arn = new
        self.load_balancers[new] = lb
        if tags:
            self.tagging_service.tag_resource(new, tags)
        return lb
    return create_load_balancer


def install() -> None:
    ELBv2Backend.create_load_balancer = _create_load_balancer(ELBv2Backend.create_load_balancer)
