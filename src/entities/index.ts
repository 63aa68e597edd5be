import { ActivityLog } from './activity-log.entity.js';
import { EntityCreationOutbox } from './entity-creation-outbox.entity.js';
import { LabGroup } from './lab-group.entity.js';
import { LabInsurance } from './lab-insurance.entity.js';
import { LabMissingDetails } from './lab-missing-details.entity.js';
import { LabMissingDetailsConfiguration } from './lab-missing-details-configuration.entity.js';
import { MissingDetailsEntityCreation } from './missing-details-entity-creation.entity.js';
import { MissingDetailsTemplate } from './missing-details-template.entity.js';

export {
  ActivityLog,
  EntityCreationOutbox,
  LabGroup,
  LabInsurance,
  LabMissingDetails,
  LabMissingDetailsConfiguration,
  MissingDetailsEntityCreation,
  MissingDetailsTemplate,
};

export const ALL_ENTITIES = [
  ActivityLog,
  EntityCreationOutbox,
  LabGroup,
  LabInsurance,
  LabMissingDetails,
  LabMissingDetailsConfiguration,
  MissingDetailsEntityCreation,
  MissingDetailsTemplate,
];
