"""The console's words: Chinese first, English available. One catalogue, looked up by key; a key missing from the
catalogue shows itself (so a gap is visible, never an error page). The grade names and the alert history's
reasons in words come from :mod:`sentinel.alerts.words`, which the command line uses too."""

from __future__ import annotations

from sentinel.alerts.words import GRADE_LABELS

LANGS = ("zh", "en")

# key: (zh-CN, en)
MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("安全生产风险监测预警 · 值班台", "Sentinel · duty console"),
    "board": ("值班告警", "Alert board"),
    "map": ("城市生命线一张图", "County map"),
    "hazards": ("重大事故隐患台账", "Hazard register"),
    "devices": ("设备", "Devices"),
    "stats": ("隐患统计", "Hazard statistics"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "api_key": ("API 密钥", "API key"),
    "sign_in_hint": ("请输入管理员发放给您的 API 密钥。", "Enter the API key your administrator gave you."),
    "wrong_key": ("密钥无效或已被吊销。", "The key is unknown or revoked."),
    "no_console_role": ("网关密钥不能登录值班台。", "A gateway key cannot sign in to the console."),
    "signed_in_as": ("当前用户", "Signed in as"),
    "db_away": (
        "数据库暂时无法连接：页面数据可能不是最新的，恢复后自动更新。",
        "The database is unreachable: data may be stale; the page updates when it is back.",
    ),
    "db_away_title": ("数据库暂时无法连接", "Database unavailable"),
    "retry_soon": ("页面将在几秒后自动重试。", "This page retries in a few seconds."),
    "error_title": ("出错了", "Something went wrong"),
    "error_body": ("服务器处理请求时出错，已记录。请稍后重试。", "The server failed on this request; it is logged."),
    "not_found": ("找不到该页面或记录", "Not found"),
    "forbidden": ("无权执行此操作", "Not allowed"),
    "forbidden_role": (
        "您的角色（{role}）不能执行此操作，需要：{need}。",
        "Your role ({role}) may not do this; needs {need}.",
    ),
    "csrf_refused": (
        "表单校验失败（缺少或错误的 CSRF 令牌），操作未执行。请刷新页面后重试。",
        "The form check failed (missing or wrong CSRF token); nothing was done. Reload and retry.",
    ),
    "refused": ("操作被拒绝", "Action refused"),
    "invalid": ("输入有误", "Invalid input"),
    "back": ("返回", "Back"),
    "filters": ("筛选", "Filters"),
    "apply": ("筛选", "Apply"),
    "all": ("全部", "all"),
    "sector": ("行业", "Sector"),
    "township": ("乡镇", "Township"),
    "grade": ("等级", "Grade"),
    "state": ("状态", "State"),
    "site": ("场所", "Site"),
    "device": ("设备", "Device"),
    "rule": ("规则", "Rule"),
    "raised": ("发生时间", "Raised"),
    "age": ("持续", "Age"),
    "value": ("当前值", "Value"),
    "open_alerts": ("未关闭告警", "Open alerts"),
    "unacked": ("未确认", "Unacknowledged"),
    "oldest_unacked": ("最久未确认", "Oldest unacknowledged"),
    "none": ("无", "none"),
    "page": ("第 {n} 页", "Page {n}"),
    "prev": ("上一页", "Previous"),
    "next": ("下一页", "Next"),
    "live": ("实时", "live"),
    "reconnecting": ("正在重新连接…", "reconnecting…"),
    "new_alert": ("新告警", "New alert"),
    "sound": ("提示音", "Sound"),
    "no_alerts": ("当前没有未关闭的告警。", "No open alerts."),
    "detail": ("告警详情", "Alert detail"),
    "thresholds": ("阈值", "Thresholds"),
    "source": ("来源", "Source"),
    "rule_source": ("依据", "Basis"),
    "readings": ("告警前后读数", "Readings around the alert"),
    "no_readings": ("该时段没有读数。", "No readings in this period."),
    "history": ("处置记录", "History"),
    "when": ("时间", "When"),
    "who": ("操作人", "Who"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "why": ("原因", "Why"),
    "actions": ("处置", "Actions"),
    "ack": ("确认", "Acknowledge"),
    "shelve": ("搁置", "Shelve"),
    "unshelve": ("取消搁置", "Unshelve"),
    "comment": ("备注", "Comment"),
    "escalate": ("转入隐患台账", "Escalate to hazard register"),
    "out_of_service": ("停用（管理员）", "Out of service (admin)"),
    "in_service": ("恢复使用（管理员）", "Return to service (admin)"),
    "maintenance_on": ("设为检修", "Put in maintenance"),
    "maintenance_off": ("结束检修", "End maintenance"),
    "reason": ("原因", "Reason"),
    "minutes": ("分钟", "minutes"),
    "until": ("到期", "until"),
    "shelved_until": ("搁置至 {at}", "shelved until {at}"),
    "hazard_link": ("隐患", "Hazard"),
    "latest": ("最新", "latest"),
    "site_page": ("场所", "Site"),
    "map_hint": ("点击场所查看详情与告警。颜色表示该场所最严重的未关闭告警。", "Click a site for its alerts."),
    "legend": ("图例", "Legend"),
    "offline": ("离线", "Offline"),
    "in_maintenance": ("检修中", "In maintenance"),
    "never_heard": ("从未上报", "Never heard from"),
    "last_seen": ("最后上报", "Last heard"),
    "heard_before": ("{days} 天以前", "over {days} days ago"),
    "maintenance": ("检修", "Maintenance"),
    "new_hazard": ("登记新隐患", "New hazard entry"),
    "title": ("标题", "Title"),
    "description": ("描述", "Description"),
    "create": ("登记", "Record"),
    "overdue": ("逾期", "Overdue"),
    "deadline": ("整改期限", "Deadline"),
    "responsible_unit": ("责任单位", "Responsible unit"),
    "supervising_department": ("督办部门", "Supervising department"),
    "level": ("级别", "Level"),
    "supervision": ("督办层级", "Supervision"),
    "evidence": ("佐证材料", "Evidence"),
    "evidence_file": ("上传文件（照片或 PDF）", "Upload file (photo or PDF)"),
    "evidence_ref": ("或材料编号", "or evidence reference"),
    "download": ("下载", "Download"),
    "loop": ("闭环流程", "Closed loop"),
    "submit": ("提交", "Submit"),
    "period": ("统计周期", "Period"),
    "by": ("分组", "Group by"),
    "stock_start": ("期初存量", "Stock at start"),
    "increment": ("增量", "Increment"),
    "closed": ("销号", "Closed"),
    "stock_end": ("期末存量", "Stock at end"),
    "closure_rate": ("销号率", "Closure rate"),
    "plan": ("整改方案（五落实）", "Rectification plan (five in place)"),
    "plan.responsibility": ("责任", "Responsibility"),
    "plan.measures": ("措施", "Measures"),
    "plan.funds": ("资金", "Funds"),
    "plan.deadline": ("时限", "Time limit"),
    "plan.contingency": ("预案", "Contingency"),
    "created": ("登记时间", "Recorded"),
    "count": ("数量", "Count"),
    "state_of": ("当前状态", "Current state"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
}

LABELS: dict[str, tuple[str, str]] = {
    "role.officer": ("值班员", "duty officer"),
    "role.supervisor": ("带班领导", "supervisor"),
    "role.admin": ("管理员", "administrator"),
    "role.gateway": ("网关", "gateway"),
    # grades: the alerts layer's names (the CLI prints them too)
    **{f"grade.{grade}": pair for grade, pair in GRADE_LABELS.items()},
    # alert states (ISA-18.2)
    "astate.active_unack": ("未确认", "active, unacknowledged"),
    "astate.active_ack": ("已确认", "active, acknowledged"),
    "astate.cleared_unack": ("已恢复未确认", "cleared, unacknowledged"),
    "astate.normal": ("已关闭", "normal"),
    "astate.shelved": ("已搁置", "shelved"),
    "astate.suppressed": ("已抑制", "suppressed"),
    "astate.out_of_service": ("已停用", "out of service"),
    # sectors
    "sector.gas": ("燃气", "gas"),
    "sector.dust": ("粉尘涉爆", "dust"),
    "sector.casting": ("冶金铸造", "casting"),
    "sector.charging": ("电动自行车充电", "e-bike charging"),
    "sector.other": ("其他", "other"),
    # hazard sources
    "hsource.alert": ("监测告警", "alert"),
    "hsource.self_inspection": ("企业自查", "self-inspection"),
    "hsource.supervisory_inspection": ("监管检查", "supervisory inspection"),
    "hsource.public_report": ("群众举报（已核实）", "verified public report"),
    "hsource.insurer_inspection": ("保险机构检查", "insurer inspection"),
    # hazard states
    "hstate.recorded": ("已登记", "recorded"),
    "hstate.classified": ("已判定", "classified"),
    "hstate.assigned": ("已交办", "assigned"),
    "hstate.rectifying": ("整改中", "rectifying"),
    "hstate.verification_requested": ("申请验收", "verification requested"),
    "hstate.verified": ("已验收", "verified"),
    "hstate.closed": ("已销号", "closed"),
    # hazard actions
    "haction.classify": ("判定", "classify"),
    "haction.assign": ("交办（挂牌督办）", "assign"),
    "haction.start_rectification": ("开始整改", "start rectification"),
    "haction.request_verification": ("申请验收", "request verification"),
    "haction.verify_pass": ("验收通过", "verification passed"),
    "haction.verify_fail": ("验收不通过", "verification failed"),
    "haction.close": ("销号", "close"),
    "haction.comment": ("备注", "comment"),
    "hlevel.major": ("重大", "major"),
    "hlevel.general": ("一般", "general"),
    "supervision.none": ("无", "none"),
    "supervision.township": ("乡镇督办", "township"),
    "supervision.county": ("县级督办", "county"),
    "supervision.city": ("市级督办", "city"),
}


def translate(lang: str, key: str, **values: object) -> str:
    pair = MESSAGES.get(key) or LABELS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def label(lang: str, kind: str, value: object) -> str:
    """A domain value in words: ``label("zh", "grade", "red")`` → 一级 红色; unknown values show as they are."""
    if value is None:
        return "—"
    pair = LABELS.get(f"{kind}.{value}")
    if pair is None:
        return str(value)
    return pair[1] if lang == "en" else pair[0]
