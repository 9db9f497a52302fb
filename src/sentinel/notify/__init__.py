"""Reaching the officer on duty (issue 16): channels (DingTalk and WeCom robots, Aliyun SMS and voice, e-mail, the
generic webhook), rate limits with digests, the duty roster, escalation until acknowledged, and the audit trail.

Entry points: :func:`sentinel.notify.service.build_notifier` (a :class:`~sentinel.notify.service.Notifier` with
``start``/``stop``), :func:`sentinel.notify.api.make_router` (``/v1/duty``, ``/v1/alerts/{id}/notifications``,
``/v1/notify/channels``) and :mod:`sentinel.notify.commands` (``sentinel notify``, ``sentinel duty``). This
package imports nothing at import time, so ``sentinel.alerts`` can use :mod:`.webhook` without a cycle.
"""
