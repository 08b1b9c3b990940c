"""campaign.toml's [notion] table: the database ids, the API's pace and timeouts, and the names of the properties
xmas reads and writes in each database ([notion.properties.contacts|templates|tracker]), so a person may rename
them in Notion and say so here."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ContactProperties(_Strict):
    title: str = "Name"  # the contact's first name, as the old system had it
    email: str = "Email"
    business_name: str = "Business Name"
    segment: str = "Segment"
    score: str = "Assessment Score"
    unsubscribed: str = "Unsubscribed"
    suppressed_reason: str = "Suppression Reason"
    data: str = "Data"
    updated: str = "Updated"
    events: str = "Events"  # one line per event: time, name, then its key and data as JSON
    booking: str = "Booking Status"  # the latest event that says whether the contact booked a call
    consent: str = "Consent"  # "implied · lead-nurture · 2026-12-01T10:30:00Z · expires 2027-06-02T10:30:00Z"
    # What a person asks of xmas in Notion (docs/notion-operations.md): an action on a contact, applied by the next
    # tick, its outcome beside it; on the campaign's control rows, the pause (Paused, since when, why)
    # the assessment's answers as columns to sort and filter by (the Data JSON keeps them too; an edited column wins)
    red_systems: str = "Red Systems"
    orange_systems: str = "Orange Systems"
    yellow_systems: str = "Yellow Systems"
    green_systems: str = "Green Systems"
    weakest_systems: str = "Weakest Systems"  # "GPS, Money": weakest_system_1, weakest_system_2
    revenue_leak: str = "Revenue Leak"
    # the funnel's facts that enrollments and events bring (core/funnel_facts.py), never cleared by xmas
    call_time: str = "Call Time"  # the latest of post-call's call_date, no-show's scheduled_time, a booking's time
    payment_status: str = "Payment Status"  # onboarding's payment_status
    package: str = "Package"  # onboarding's package_type
    # the contact's emails (the Sequence Tracker's Contact relation, seen from here) and what they roll up to
    emails: str = "Emails"
    emails_sent: str = "Emails Sent"  # how many have a Sent At
    last_sent: str = "Last Sent"
    next_due: str = "Next Due"  # the earliest Due of its rows
    opened: str = "Emails Opened"  # how many have an Opened At
    sequences: str = "Sequences"  # the sequences of its rows
    action: str = "Action"
    action_result: str = "Action Result"
    paused: str = "Paused"
    paused_since: str = "Paused Since"
    pause_reason: str = "Pause Reason"


class TemplateProperties(_Strict):
    name: str = "Template Name"
    subject: str = "Subject Line"
    body: str = "Email Body HTML"
    status: str = "Status"


class TrackerProperties(_Strict):
    title: str = "Name"
    row_id: str = "Row ID"
    enrollment_key: str = "Enrollment Key"
    email: str = "Email"
    sequence: str = "Sequence"
    step: str = "Step"
    template: str = "Template"
    sender: str = "Sent By"
    due: str = "Due"
    state: str = "State"
    sent_at: str = "Sent At"
    message_id: str = "Message ID"
    attempts: str = "Attempts"
    last_error: str = "Last Error"
    note: str = "Note"
    data: str = "Data"
    # what Resend reported after sending (delivery events): a person can sort and filter by them
    delivered_at: str = "Delivered At"
    opened_at: str = "Opened At"
    opens: str = "Opens"
    clicks: str = "Clicks"
    links: str = "Clicked Links"
    bounce: str = "Bounce"
    complained_at: str = "Complained At"
    delayed: str = "Delayed"
    variant: str = "Subject Variant"
    contact: str = "Contact"  # a relation to the contact's page in Contacts


class ViewNames(_Strict):
    """The views `xmas notion setup` (and `upgrade`) makes, by name: renamed here, they are made under the new name."""

    due: str = "Due in the next 24 hours"
    attention: str = "Needs attention"
    paused: str = "Paused"
    board: str = "Board by state"
    calendar: str = "Calendar by due"
    sequence: str = "Sequence: {sequence}"  # one per sequence
    in_sequence: str = "In a sequence"
    booked: str = "Booked"
    unsubscribed: str = "Unsubscribed"
    dashboard: str = "Dashboard"
    sent_per_day: str = "Sent per day"
    by_state: str = "Rows by state"
    funnel: str = "Funnel: rows by sequence and state"


class NotionProperties(_Strict):
    contacts: ContactProperties = ContactProperties()
    templates: TemplateProperties = TemplateProperties()
    tracker: TrackerProperties = TrackerProperties()


class NotionConfig(_Strict):
    """Database ids as copied from Notion (env XMAS_NOTION_CONTACTS / _TEMPLATES / _TRACKER override them)."""

    contacts: str = ""
    templates: str = ""
    tracker: str = ""
    requests_per_second: float = Field(default=3, gt=0, le=10)  # Notion allows an average of 3
    timeout_seconds: float = Field(default=30, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)
    schema_check_minutes: float = Field(default=60, ge=0)  # how long a passed schema check is trusted
    properties: NotionProperties = NotionProperties()
    views: ViewNames = ViewNames()
    # The Contacts rows with no Email that pause the campaign: "Campaign" (all of it), "Campaign: SEQUENCE" (one)
    control: str = Field(default="Campaign", min_length=1, max_length=100)
