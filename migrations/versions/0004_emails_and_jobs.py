"""Emails and jobs: outbox bodies and claims, unsubscribes, NPS surveys, job runs and leases, rule-made tasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:32:58.653640

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_leases',
    sa.Column('job', sa.String(length=60), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('job', name=op.f('pk_job_leases'))
    )
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=60), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('runner', sa.String(length=120), nullable=False),
    sa.CheckConstraint("outcome IN ('running', 'succeeded', 'failed', 'skipped')", name=op.f('ck_job_runs_outcome')),
    sa.CheckConstraint("trigger IN ('schedule', 'manual')", name=op.f('ck_job_runs_trigger')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_job_started', ['job', 'started_at'], unique=False)

    op.create_table('nps_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('feedback_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_nps_surveys_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], name=op.f('fk_nps_surveys_feedback_id_feedback'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_surveys')),
    sa.UniqueConstraint('customer_id', 'period', name='uq_nps_surveys_customer_period'),
    sa.UniqueConstraint('feedback_id', name=op.f('uq_nps_surveys_feedback_id'))
    )
    with op.batch_alter_table('nps_surveys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nps_surveys_customer_id'), ['customer_id'], unique=False)

    # Plain ALTER TABLE, not batch mode: rebuilding customers on SQLite would lose its expression indexes.
    op.add_column('customers', sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('email_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('body_text', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('body_html', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('claim_token', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_email_notifications_claim_token'), ['claim_token'], unique=False)

    with op.batch_alter_table('interventions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rule', sa.String(length=60), nullable=True))
        batch_op.create_index(batch_op.f('ix_interventions_rule'), ['rule'], unique=False)


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would reflect customers, whose expression indexes
    # SQLite cannot describe.
    op.drop_index('ix_interventions_rule', table_name='interventions')
    op.execute("ALTER TABLE interventions DROP COLUMN rule")
    op.drop_index('ix_email_notifications_claim_token', table_name='email_notifications')
    for column in ('claimed_until', 'claim_token', 'body_html', 'body_text', 'payload'):
        op.execute(f"ALTER TABLE email_notifications DROP COLUMN {column}")
    op.execute("ALTER TABLE customers DROP COLUMN unsubscribed_at")
    op.drop_table('nps_surveys')
    op.drop_table('job_runs')
    op.drop_table('job_leases')
